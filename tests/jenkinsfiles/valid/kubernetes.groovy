pipeline {
    agent {
        kubernetes {
            yaml '''
apiVersion: v1
kind: Pod
spec:
  containers:
    - name: build
      image: golang:1.24
'''
        }
    }
    stages {
        stage('Build') {
            agent { docker { image 'golang:1.24' } }
            steps {
                checkout scm
                sh 'go build ./...'
                writeFile file: 'VERSION', text: "1.0"
                sleep(time: 1, unit: 'SECONDS')
            }
        }
    }
}
