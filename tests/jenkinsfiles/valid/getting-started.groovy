// Getting started: build, test, then wait for a person to approve staging.
pipeline {
    agent any

    environment {
        APP_NAME = 'hello'
        DEPLOY_TOKEN = credentials('deploy-token')
    }

    parameters {
        string(name: 'GREETING', defaultValue: 'Hello', description: 'First word of the file')
        booleanParam(name: 'RUN_SLOW_TEST', defaultValue: false, description: 'Run the slow test')
    }

    stages {
        stage('Build') {
            steps {
                sh '''
                    mkdir -p dist
                    echo "$GREETING from $APP_NAME, build $BUILD_NUMBER" > dist/hello.txt
                '''
                archiveArtifacts artifacts: 'dist/**'
            }
        }
        stage('Test') {
            steps {
                sh '''
                    mkdir -p reports
                    if grep -q "$GREETING" dist/hello.txt; then
                        greeting='<testcase classname="hello" name="greeting"/>'
                    else
                        greeting='<testcase classname="hello" name="greeting"><failure/></testcase>'
                    fi
                    if [ "$RUN_SLOW_TEST" = true ]; then
                        sleep 5
                        slow='<testcase classname="hello" name="slow"/>'
                    else
                        slow='<testcase classname="hello" name="slow"><skipped/></testcase>'
                    fi
                    {
                        echo '<testsuite name="hello">'
                        echo "$greeting"
                        echo "$slow"
                        echo '</testsuite>'
                    } > reports/junit.xml
                '''
                junit 'reports/*.xml'
            }
        }
        stage('Staging') {
            input {
                message 'Deploy to staging?'
                ok 'Deploy'
            }
            steps {
                sh 'echo "Deploying $APP_NAME to staging with token $DEPLOY_TOKEN"'
            }
        }
    }

    post {
        always {
            echo "Run ${env.BUILD_NUMBER} of ${env.APP_NAME} has ended."
        }
        failure {
            echo 'The run failed: the log names the step and line at fault.'
        }
    }
}
